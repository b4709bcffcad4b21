# C declarations Cython adds to hitpath.py when it compiles it (the .py stays
# plain Python): a list's size field, for popping without the shrinking
# realloc list.pop() does (see hitpath._pop_last).
cdef extern from "Python.h":
    void Py_SET_SIZE(object o, Py_ssize_t size)
