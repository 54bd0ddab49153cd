from tests.runner.toy.study import GROUP as STUDY  # noqa: F401
