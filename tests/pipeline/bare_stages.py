"""A stage module that imports nothing, to see what the subprocess child itself loads."""


def loaded_modules(context):  # type: ignore[no-untyped-def]
    import sys

    return {"modules": sorted(sys.modules)}
