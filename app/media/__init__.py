"""Call media: one aiortc peer connection per call (ICE + DTLS-SRTP, audio), sound
devices through sounddevice, files for headless calls, tones.

The session handler app/sip uses is :class:`app.media.session.MediaSession`; devices are
in :mod:`app.media.devices`, tones in :mod:`app.media.tones`. Nothing is imported here,
so a module of the package (say the DTMF codec) loads without aiortc or PortAudio.
"""
