"""Call statistics from RTCP (RFC 3550 §6.4) and from our playout, for call quality
(the media-extras MOS estimate) and for the user."""

from __future__ import annotations

from dataclasses import dataclass

from app.media.playout import PlayoutStats


@dataclass(frozen=True)
class MediaStats:
    send_codec: str | None  # e.g. "opus/48000/2", what we send
    receive_codec: str | None  # what the far end sends, from the payload type it uses
    rtt: float | None  # seconds, from the far end's receiver reports (RFC 3550 §6.4.1 LSR/DLSR)
    jitter: float | None  # seconds, interarrival jitter of what we receive (RFC 3550 §6.4.1)
    packets_received: int
    packets_lost: int  # of what we receive, cumulative (RFC 3550 §6.4.1)
    fraction_lost: float | None  # of what we receive since the previous stats() call, 0..1
    packets_sent: int
    remote_packets_lost: int | None  # of what we send, as the far end reports it
    remote_fraction_lost: float | None  # the far end's last report, 0..1
    remote_jitter: float | None  # seconds, the far end's view of our stream
    playout: PlayoutStats | None  # delay, concealment, drops in our playout buffer
    output_latency: float  # seconds the output device adds after the buffer
    capture_dropped_frames: int  # microphone frames dropped because the sender lagged
    late_packets: int  # RTP packets that came after a newer one (dropped, concealed)
    reference_dropped_frames: int = 0  # far-end reference left out as the capture path lagged

    @property
    def playout_delay(self) -> float | None:
        """Seconds from a frame's arrival to its being heard (buffer + device)."""
        return None if self.playout is None else self.playout.delay + self.output_latency
