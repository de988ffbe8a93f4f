"""The session's py4j view, made to look each Java name up once instead of at every use.

Py4J resolves every attribute of its JVM view, of a Java package and of a Java class with
a round trip to the JVM, and keeps nothing: ``F.col("x")`` costs three (the class, its
method, then the call). A batch of the stream job (400 records, the real
``BatchProcessor``) made about 3,560 calls to the JVM, 3,540 of them short ones that took
0.90 s of its 1.92 s, and a third of those were such lookups. ``remember_lookups`` keeps
what each name resolves to, on the view that PySpark and the job share
(``SparkContext._jvm``).

Only what cannot change is kept: packages, classes and static methods (a static method is
still called in the JVM each time, by name, as before). A static field's value is asked for
every time, and a name that fails to resolve is asked again. Free of Spark 4-only imports:
the Glue entry (Spark 3.5) uses it too.
"""

from __future__ import annotations

from py4j.java_gateway import JavaClass, JavaMember, JavaPackage, JVMView


class _Remembering:
    """Mixed into py4j's view, package and class types: ``__getattr__`` (reached only for
    names that are not Python attributes) answers from what it found before."""

    def __getattr__(self, name: str):
        remembered = self.__dict__.setdefault("_remembered", {})
        if name in remembered:
            return remembered[name]
        value = super().__getattr__(name)
        if isinstance(value, JavaClass):
            value.__class__ = RememberingClass
        elif isinstance(value, JavaPackage):
            value.__class__ = RememberingPackage
        elif not (isinstance(value, JavaMember) and value.container is None):
            return value  # a static field's value, or anything else: not kept
        remembered[name] = value
        return value


class RememberingView(_Remembering, JVMView):
    pass


class RememberingPackage(_Remembering, JavaPackage):
    pass


class RememberingClass(_Remembering, JavaClass):
    pass


def remember_lookups(jvm: JVMView) -> JVMView:
    """Make ``jvm`` (py4j's view, as ``SparkContext._jvm`` holds it) remember its lookups,
    in place, so every reference to it does; returns it."""
    if type(jvm) is JVMView:
        jvm.__class__ = RememberingView
    return jvm
