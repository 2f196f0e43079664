"""The `hwprof` command line. Thin: parse, call library functions, print with rich."""
