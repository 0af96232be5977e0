"""The contract every encoder backend keeps, so pipeline and mux never know which ran."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import av

    from nvenc_cli.frames import FrameBatch
    from nvenc_cli.mux import Muxer
    from nvenc_cli.plan import EncodePlan


@dataclass(frozen=True)
class Availability:
    """Result of a backend probe: ``reason`` says why not (or what was found)."""

    ok: bool
    reason: str


class Session(Protocol):
    """One open encoder.

    ``convert`` may run in a worker thread (it must not touch encoder state);
    ``encode``/``flush`` run on one thread in frame order and return packets whose pts/dts
    are in a 1/fps time base (``packet.time_base`` set). The session obtains its output
    stream from the muxer it was opened with (``Muxer.new_stream`` to encode with PyAV,
    ``Muxer.stream_from_template`` for packets made elsewhere) before the first packets
    are written; it never writes files itself.
    """

    description: str

    def convert(self, batch: FrameBatch) -> Any: ...

    def encode(self, converted: Any) -> list[av.Packet]: ...

    def flush(self) -> list[av.Packet]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """A way to encode: ``cpu`` (PyAV/FFmpeg) or ``nvenc`` (CV-CUDA + PyNvVideoCodec)."""

    name: str

    def probe(self) -> Availability: ...

    def encoders(self) -> list[str]: ...

    def open(self, plan: EncodePlan, muxer: Muxer) -> Session:
        """Open the encoder; every option is validated here, before any frame is read."""
        ...
