"""Build hook for the one compiled part: the client transform's fused kernel (``partialface._stencil``).

Everything else is declared in pyproject.toml. The extension is optional: where no C compiler is
available the build skips it and ``partialface.frequency`` runs its pure-PyTorch path instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "partialface._stencil",
            sources=["src/partialface/_stencil.c"],
            extra_compile_args=["-O3", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ]
)
