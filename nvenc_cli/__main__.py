from nvenc_cli.cli import run

run()
