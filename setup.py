"""facenet-tf2: the davidsandberg/facenet scripts and models on TensorFlow 2 / Keras 3.

The original layout is kept: everything importable lives in ``src/``. ``facenet``, ``lfw`` and the
scripts are top-level modules and ``align``/``models`` top-level packages, exactly the names the
original's users had on their PYTHONPATH, so ``import facenet`` and ``--model_def
models.inception_resnet_v1`` keep working after ``pip install -e .`` with no PYTHONPATH at all.
"""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def read_requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


# Every top-level module in src/ (facenet, lfw and the argparse scripts) is installed as a module,
# so the scripts can also be imported (`import validate_on_lfw`) and serve console entry points.
TOP_LEVEL_MODULES = sorted(path.stem for path in SRC.glob("*.py"))

# Console commands for the scripts that exist; each script defines `cli()`.
ENTRY_POINTS = {
    "facenet-align": "align.align_dataset_mtcnn",
    "facenet-validate-lfw": "validate_on_lfw",
    "facenet-compare": "compare",
    "facenet-freeze-graph": "freeze_graph",
    "facenet-generate-pairs": "generate_pairs",
    "facenet-classifier": "classifier",
}


def existing_entry_points():
    points = []
    for command, module in ENTRY_POINTS.items():
        if (SRC / (module.replace(".", "/") + ".py")).exists():
            points.append(f"{command} = {module}:cli")
    return points


setup(
    name="facenet-tf2",
    version="0.1.0",
    description="FaceNet (davidsandberg/facenet) ported to TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    package_dir={"": "src"},
    py_modules=TOP_LEVEL_MODULES,
    packages=["facenet_tf2", "facenet_tf2.training", "align", "models"],
    install_requires=read_requirements(),
    extras_require={"test": ["pytest>=8"]},
    entry_points={"console_scripts": existing_entry_points()},
)
