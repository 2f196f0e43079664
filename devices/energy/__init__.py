"""Energy meters (the ``hwprof.meters`` contract): RAPL, NVML, Jetson tegrastats, an external meter's CSV log."""
