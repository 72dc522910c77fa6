"""Plugins built by setuptools: ``pip wheel .`` on a plugin project gives a wheel carrying the plugin.

A plugin project's ``setup.py`` lists its plugins with :func:`plugin_extension` and builds them
with this module's commands; its ``pyproject.toml`` declares each plugin under the entry-point
group ``plutino.plugins``, which is how the host finds it once pip has installed the wheel::

    # setup.py
    from setuptools import setup
    from plutino_contract.setuptools import plugin_cmdclass, plugin_extension

    setup(
        ext_modules=[plugin_extension("wordlen", "function", ["src/wordlen.c"], package="plutino_wordlen")],
        cmdclass=plugin_cmdclass(),
    )

    # pyproject.toml
    [project.entry-points."plutino.plugins"]
    wordlen = "plutino_wordlen:wordlen.so [function]"

A plugin extension is built as ``plutino_add_plugin()`` builds it with CMake: C (C11), C++
(C++17, ``plutino.hpp``) or Cython sources (translated with the contract's ``plutino.pxd`` on
the include path), the contract's headers on the include path, hidden visibility
(``-fvisibility-inlines-hidden`` for C++), ``PLUTINO_PLUGIN_VERSION`` defined (the project's
version unless given), Release flags (``-O3 -DNDEBUG``, no debug info; ``--debug`` builds
``-O0 -g``), and linked with the contract's version script ``plutino_plugin.map``, so the
entry ``plutino_plugin_v1`` is its only exported symbol (no ``PyInit_``), without libpython
or Python's run path. The file is ``<package>/<name>.so`` (``my_fn.so`` for ``my-fn``): no
Python extension suffix, since the host loads it with ``dlopen`` and Python never imports it.

A C or C++ plugin needs no Python at run time, so :func:`plugin_cmdclass` tags its wheel
``py3-none-<platform>``: one wheel serves every Python 3 on that platform. A Cython plugin
calls into the CPython it was compiled against (its ABI tag says which, e.g. ``cp311``), and
its wheel keeps the ``cp311-cp311-<platform>`` tag, so pip installs it only there.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from setuptools import Extension
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.errors import CompileError, SetupError

from plutino_contract import get_cmake_dir, get_include, get_pxd_dir

#: The entry-point group under which a distribution declares the plugins it carries.
ENTRY_POINT_GROUP = "plutino.plugins"
KINDS = ("source", "sink", "function")

_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_C = (".c",)
_CXX = (".cc", ".cpp", ".cxx", ".c++")
_CYTHON = (".pyx",)
_RELEASE = ["-O3", "-DNDEBUG", "-g0"]
_DEBUG = ["-O0", "-g"]
_PYTHON_RUN_PATH = ("-Wl,-rpath", "-Wl,--enable-new-dtags")


class PluginExtension(Extension):
    """An :class:`~setuptools.Extension` that builds a Plutino plugin (see :func:`plugin_extension`)."""

    def __init__(self, name: str, sources: List[str], *, plugin: str, kind: str, package: str,
                 version: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(name, sources, **kwargs)
        self.plugin = plugin
        self.kind = kind
        self.package = package
        self.version = version
        #: a Cython plugin calls into the CPython it was compiled against
        self.needs_python = any(str(s).endswith(_CYTHON) for s in sources)

    @property
    def file_name(self) -> str:
        """The plugin's file inside its package: ``<name>.so``, a ``-`` in the name written ``_``
        (an entry point names the file as a Python attribute)."""
        return f"{self.plugin.replace('-', '_')}.so"

    def entry_point(self) -> str:
        """Its line in the ``plutino.plugins`` entry-point group."""
        return f"{self.plugin} = {self.package}:{self.file_name} [{self.kind}]"


def plugin_extension(name: str, kind: str, sources: Sequence[str], *, package: str,
                     version: Optional[str] = None, **kwargs: Any) -> PluginExtension:
    """The plugin ``name`` of ``kind`` (source, sink or function), built from ``sources``.

    ``package`` is the Python package (a folder of the wheel) that holds ``<name>.so``.
    ``version`` becomes ``PLUTINO_PLUGIN_VERSION`` (the version in the ABI tag); None uses
    the project's version. Other keyword arguments are :class:`~setuptools.Extension`'s
    (``include_dirs``, ``define_macros``, ``libraries``, ``extra_compile_args``, ...).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SetupError(f"plugin_extension(): plugin name {name!r} is not valid; use 1 to 63 letters, digits,"
                         " '-' or '_' (the name in the plugin's PLUTINO_DECLARE_* line)")
    if kind not in KINDS:
        raise SetupError(f"plugin_extension({name!r}): kind must be source, sink or function, got {kind!r}")
    if not isinstance(package, str) or not _PACKAGE.fullmatch(package):
        raise SetupError(f"plugin_extension({name!r}): package {package!r} is not a Python package name;"
                         " give the dotted name of the package folder that holds the .so, e.g. 'plutino_wordlen'")
    if not sources:
        raise SetupError(f"plugin_extension({name!r}): no sources given")
    for source in sources:
        if not str(source).endswith(_C + _CXX + _CYTHON):
            raise SetupError(f"plugin_extension({name!r}): {source} is not a C (.c), C++ (.cc, .cpp, .cxx) or"
                             " Cython (.pyx) source")
    if any(str(s).endswith(_CXX) for s in sources):
        kwargs.setdefault("language", "c++")
    return PluginExtension(f"{package}.{name}", [str(s) for s in sources], plugin=name, kind=kind,
                           package=package, version=version, **kwargs)


class build_ext(_build_ext):
    """setuptools' ``build_ext``, building every :class:`PluginExtension` as a plugin."""

    def run(self) -> None:
        self._check_entry_points()
        super().run()

    def _plugins(self) -> Dict[str, PluginExtension]:
        return {e.name: e for e in self.extensions or () if isinstance(e, PluginExtension)}

    def _check_entry_points(self) -> None:
        """A plugin the wheel does not declare is a plugin the host never finds."""
        declared = _entry_point_lines(getattr(self.distribution, "entry_points", None) or {})
        missing = [e for e in self._plugins().values() if _squash(e.entry_point()) not in declared]
        if missing:
            lines = "\n".join(f'    {e.plugin} = "{e.package}:{e.file_name} [{e.kind}]"' for e in missing)
            raise SetupError(
                f"the project builds plugin{'s' * (len(missing) > 1)} {', '.join(e.plugin for e in missing)} but"
                f" does not declare {'them' if len(missing) > 1 else 'it'} in the entry-point group"
                f" {ENTRY_POINT_GROUP}, so the host would not find {'them' if len(missing) > 1 else 'it'};"
                f' add to pyproject.toml:\n[project.entry-points."{ENTRY_POINT_GROUP}"]\n{lines}')

    def get_ext_filename(self, fullname: str) -> str:
        # called with the full dotted name, and (by get_ext_fullpath) with its last part alone
        plugins = self._plugins()
        ext = plugins.get(fullname) or {e.name.rsplit(".", 1)[-1]: e for e in plugins.values()}.get(fullname)
        if ext is None:
            return str(super().get_ext_filename(fullname))
        return os.path.join(*fullname.split(".")[:-1], ext.file_name)

    def get_export_symbols(self, ext: Extension) -> List[str]:
        if isinstance(ext, PluginExtension):
            return []  # the version script decides: plutino_plugin_v1 only
        return list(super().get_export_symbols(ext))

    def get_libraries(self, ext: Extension) -> List[str]:
        if isinstance(ext, PluginExtension):
            return list(ext.libraries)  # never libpython: the host process provides CPython, if needed
        return list(super().get_libraries(ext))

    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, PluginExtension):
            super().build_extension(ext)
            return
        self._prepare(ext)
        compiler = self.compiler
        plain_compile = compiler._compile
        optimize = _DEBUG if self.debug else _RELEASE

        def compile_one(obj: str, src: str, ext_: str, cc_args: List[str], extra_postargs: List[str],
                        pp_opts: List[str]) -> None:
            # per language, after the project's own flags: C11 or C++17, hidden visibility, Release
            extra = [*extra_postargs, *_language_flags(src), "-fvisibility=hidden", "-Wall", *optimize]
            plain_compile(obj, src, ext_, cc_args, extra, pp_opts)

        linkers = {attr: getattr(compiler, attr) for attr in ("linker_so", "linker_so_cxx") if hasattr(compiler, attr)}
        for attr, cmd in linkers.items():  # Python's own run path (from LDSHARED) means nothing to a plugin
            setattr(compiler, attr, [arg for arg in cmd if not arg.startswith(_PYTHON_RUN_PATH)])
        compiler._compile = compile_one
        try:
            super().build_extension(ext)
        finally:
            del compiler._compile  # the instance attribute: the class's method is back
            for attr, cmd in linkers.items():
                setattr(compiler, attr, cmd)

    def _prepare(self, ext: PluginExtension) -> None:
        """The contract's headers and version script, the plugin's version, Cython translated to C."""
        version = ext.version or self.distribution.get_version()
        if len(version.encode()) > 31:
            raise SetupError(f"plugin {ext.plugin}: version {version!r} is longer than the 31 bytes of the ABI tag")
        if get_include() not in ext.include_dirs:
            ext.include_dirs.append(get_include())
        macros = [m for m in ext.define_macros if m[0] != "PLUTINO_PLUGIN_VERSION"]
        ext.define_macros = [*macros, ("PLUTINO_PLUGIN_VERSION", f'"{version}"')]
        script = f"-Wl,--version-script={Path(get_cmake_dir()) / 'plutino_plugin.map'}"
        if script not in ext.extra_link_args:
            ext.extra_link_args.append(script)
        ext.sources = [self._cythonize(ext, s) if s.endswith(_CYTHON) else s for s in ext.sources]

    def _cythonize(self, ext: PluginExtension, pyx: str) -> str:
        try:
            from Cython.Compiler.Main import compile as cython_compile
        except ImportError:
            raise SetupError(f"plugin {ext.plugin}: {pyx} is Cython, and Cython is not installed; add"
                             ' "cython>=3" to [build-system] requires in pyproject.toml') from None
        out = Path(self.build_temp, f"{ext.plugin}_{Path(pyx).stem}.c")
        out.parent.mkdir(parents=True, exist_ok=True)
        if not self.force and out.is_file() and out.stat().st_mtime >= Path(pyx).stat().st_mtime:
            return str(out)
        result = cython_compile(pyx, output_file=str(out), include_path=[get_pxd_dir()], language_level=3,
                                cplus=False)
        if getattr(result, "num_errors", 0):
            raise CompileError(f"plugin {ext.plugin}: Cython could not translate {pyx} (the errors are above)")
        return str(out)


def _language_flags(src: str) -> List[str]:
    if src.endswith(_CXX):
        return ["-std=c++17", "-fvisibility-inlines-hidden"]
    return ["-std=gnu11"]  # what CMake's C_STANDARD 11 gives gcc and clang


def _squash(line: str) -> str:
    return re.sub(r"\s+", "", line)


def _entry_point_lines(entry_points: Any) -> List[str]:
    """The ``plutino.plugins`` lines of setup()'s ``entry_points`` (a dict of lists or of text)."""
    group = entry_points.get(ENTRY_POINT_GROUP, []) if isinstance(entry_points, dict) else []
    if isinstance(group, str):
        group = group.splitlines()
    if isinstance(group, dict):
        group = [f"{k} = {v}" for k, v in group.items()]
    return [_squash(str(line)) for line in group if str(line).strip()]


def _bdist_wheel() -> Any:
    try:
        from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from wheel.bdist_wheel import bdist_wheel
    return bdist_wheel


def plugin_cmdclass() -> Dict[str, Any]:
    """The commands of a plugin project, for ``setup(cmdclass=...)``: :class:`build_ext`, and a
    ``bdist_wheel`` that tags a wheel of C and C++ plugins ``py3-none-<platform>``."""
    base = _bdist_wheel()

    class bdist_wheel(base):  # type: ignore[valid-type, misc]
        def get_tag(self) -> Tuple[str, str, str]:
            python, abi, platform = super().get_tag()
            exts: Iterable[Any] = self.distribution.ext_modules or ()
            if exts and all(isinstance(e, PluginExtension) and not e.needs_python for e in exts):
                return "py3", "none", platform
            return python, abi, platform

    return {"build_ext": build_ext, "bdist_wheel": bdist_wheel}


__all__ = ["ENTRY_POINT_GROUP", "PluginExtension", "build_ext", "plugin_cmdclass", "plugin_extension"]
