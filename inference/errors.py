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
