"""Runtime settings from the environment and an optional `.env` (names are a public contract)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "saveyourlife"


def packaged_models_dir() -> Path:
    """The models shipped with the package (the repository's `models/` folder in a checkout)."""
    return Path(str(files("saveyourlife_models")))


def packaged_knowledge_dir() -> Path:
    return Path(str(files("bot.knowledge")))


def default_database_url() -> str:
    """SQLite in the user's data folder: writable from any working directory, never inside site-packages."""
    return f"sqlite+aiosqlite:///{user_data_path(APP_NAME) / 'saveyourlife.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_API_URL")
    telegram_file_url: str = Field(default="https://api.telegram.org/file/bot", alias="TELEGRAM_FILE_URL")
    database_url: str = Field(default_factory=default_database_url, alias="DATABASE_URL")
    models_dir: Path = Field(default_factory=packaged_models_dir, alias="MODELS_DIR")
    # The chat's knowledge files (topics, phrasings, red-flag rules): the packaged ones unless an operator edits a copy.
    knowledge_dir: Path = Field(default_factory=packaged_knowledge_dir, alias="KNOWLEDGE_DIR")

    webhook_url: str | None = Field(default=None, alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="WEBHOOK_SECRET")
    webhook_listen: str = Field(default="127.0.0.1", alias="WEBHOOK_LISTEN")
    webhook_port: int = Field(default=8443, alias="WEBHOOK_PORT")
    store_images: bool = Field(default=False, alias="STORE_IMAGES")
    images_per_minute: int = Field(default=10, alias="IMAGES_PER_MINUTE")
    inference_workers: int = Field(default=2, alias="INFERENCE_WORKERS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # Telegram allows about 30 messages/s per bot and 1/s per chat; AIORateLimiter keeps us inside that.
    # Turn it off only against a local API server (load benchmarks measure the bot's own capacity).
    rate_limiter: bool = Field(default=True, alias="TELEGRAM_RATE_LIMITER")

    @field_validator("telegram_bot_token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if value in ("", None) else value

    @property
    def token(self) -> str | None:
        return self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else None
