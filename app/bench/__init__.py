"""Harnesses and benchmarks: multi-process overlays (:mod:`app.bench.overlay_harness`),
the NAT lab in network namespaces (:mod:`app.bench.nat_lab`), and the ``p2psip bench``
sub-commands (``bench_*`` modules, registered by :mod:`app.cli.bench_cmd`)."""
