"""Trace readers: ftrace text (``/sys/kernel/tracing/trace``, ``trace_pipe``),
``trace-cmd report`` and ``perf script`` output of the kmem tracepoints, plus the
lab bundles' kprobe events and markers.  Parsed once into a columnar store
(:mod:`slubsim.trace.store`) and replayed many times from it."""
