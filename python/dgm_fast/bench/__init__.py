"""dgm_fast's benchmark suite, shipped with the package so that an installed wheel can run it.

    dgm-fast bench --quick                 # the small sizes, about 2 minutes on 2 cores
    dgm-fast bench --device cuda           # GPU: adds the CUDA-graph implementations
    dgm-fast bench --only rbm --save base  # one family; the run saved under .benchmarks/
    dgm-fast bench --compare base          # flags regressions against a saved run
    dgm-fast bench --report base           # Markdown tables of a saved run (report.py)

It is a pytest-benchmark suite: ``bench_<family>.py`` per family, one test per family x operation
x size x implementation (dgm_fast, eager PyTorch, torch.compile, eager and dgm_fast captured in a
CUDA graph on GPUs, and the peers users pick where they apply: scikit-learn, learnergy if
installed). ``conftest.py`` groups a case's implementations, records the machine, and puts each
implementation's time over dgm_fast's into the saved JSON. ``pip install dgm_fast[bench]``
brings pytest-benchmark and scikit-learn.
"""
