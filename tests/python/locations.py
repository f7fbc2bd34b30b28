"""Where the Python tests find the repository, the model caches and the litelens command.

LITELENS_CACHE  the cache root (default ~/.cache/litelens): models/ holds the MediaPipe models
                (scripts/fetch-models.sh), fixtures/ the converter-made ones (scripts/make-fixtures.py)
LITELENS_CLI    the litelens binary, or the folder holding it (default build/tools/litelens/litelens)
"""
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CACHE = os.environ.get("LITELENS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "litelens")
MODEL_DIR = os.path.join(CACHE, "models")
FIXTURE_DIR = os.path.join(CACHE, "fixtures")
MODELS = sorted(glob.glob(os.path.join(MODEL_DIR, "*.tflite")))

CLI = os.environ.get("LITELENS_CLI") or os.path.join(REPO, "build", "tools", "litelens", "litelens")
if not os.path.isabs(CLI):
    CLI = os.path.join(REPO, CLI)
if os.path.isdir(CLI):
    CLI = os.path.join(CLI, "litelens")
