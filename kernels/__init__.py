"""Token-mixing ops: an fp32 token-by-token reference per op (the spec), a PyTorch chunked/parallel form
(the CPU training path) and, later, Triton kernels (the GPU path), behind one dispatcher.

Layout (as in flash-linear-attention): ``kernels/<op>/naive.py`` holds the reference,
``kernels/<op>/chunk.py`` (or ``scan.py``, ``fft.py``...) the fast PyTorch form, and
``kernels/<op>/__init__.py`` exports the public functions plus ``CASES``: the op's entries for the
shared correctness tests and ``bench/mixers.py`` (see :mod:`kernels.catalog`).
"""
