"""The one error type the image path raises for input a user sent."""

from __future__ import annotations


class InputRejected(ValueError):
    """A file we will not classify, with a reason code the bot can translate.

    `code` is a key of the message catalogue (bot/messages.json, "reject.<code>");
    `detail` is a short English explanation for the CLI and the logs; `values` fill the
    catalogue text's placeholders (e.g. what the file looked like). None of them ever
    carries file contents or patient data.
    """

    def __init__(self, code: str, detail: str, **values: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.values = values


class ConfigurationError(RuntimeError):
    """A setup problem only the operator can fix (a models folder, a knowledge file, a database URL).

    The command line prints it as one line and exits with code 2, so the message names the file or the setting.
    """
