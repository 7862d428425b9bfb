from pipeline import errors


def test_every_error_class_has_the_exit_code_of_its_class() -> None:
    expected = {
        errors.UsageError: 2,
        errors.RunLockedError: 2,
        errors.ConfigError: 2,
        errors.MissingCredentialError: 2,
        errors.InputError: 2,
        errors.DataError: 2,
        errors.HeldForReviewError: 3,
        errors.ExternalApiError: 4,
        errors.ApiAuthError: 4,
        errors.ApiQuotaError: 4,
        errors.ApiResponseError: 4,
    }
    for cls, code in expected.items():
        assert cls("x").exit_code == code, cls.__name__


def test_the_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.InvsyncError):
            assert name in doc, f"{name} is missing from the tree in errors.py's docstring"
