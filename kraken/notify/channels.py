"""Senders: email (SMTP), Slack and Discord incoming webhooks, a generic JSON webhook and
GitHub commit statuses.  Each raises ``NotifyError`` (or any exception) when sending failed."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from kraken.core.config import Settings
from kraken.notify.targets import IPAddress, TargetRefused, resolve_checked

CHANNELS = ("email", "slack", "discord", "webhook", "github")
HTTP_TIMEOUT = 20.0


class NotifyError(Exception):
    pass


@dataclass
class Message:
    event: str  # run_started | run_completed | flow_completed | flow_started | culprit
    subject: str
    text: str
    url: str
    result: str | None  # None when started
    previous_result: str | None
    changed: bool
    payload: dict[str, Any] = field(default_factory=dict)  # the generic webhook's body
    commit: str | None = None
    repo: str | None = None
    context: str = "kraken"


def destination(channel: str, conf: Any) -> str:
    """What the notification goes to, for the record (may contain secrets: mask it)."""
    if channel == "email":
        return ", ".join(recipients(conf))
    if isinstance(conf, str):
        return conf
    if isinstance(conf, dict):
        for key in ("url", "webhook", "channel", "repo"):
            if conf.get(key):
                return str(conf[key])
    return channel


def recipients(conf: Any) -> list[str]:
    if isinstance(conf, str):
        return [a.strip() for a in conf.split(",") if a.strip()]
    if isinstance(conf, list):
        return [str(a) for a in conf]
    if isinstance(conf, dict):
        return recipients(conf.get("to") or [])
    return []


async def send(channel: str, conf: Any, msg: Message, settings: Settings) -> None:
    if channel == "email":
        await send_email(conf, msg, settings)
    elif channel == "slack":
        await send_slack(conf, msg, settings)
    elif channel == "discord":
        url = conf if isinstance(conf, str) else (conf or {}).get("webhook") or (conf or {}).get("url")
        if not url:
            raise NotifyError("discord needs 'webhook' (an incoming webhook URL)")
        await post_json(str(url), {"content": f"**{msg.subject}**\n{msg.text}\n{msg.url}"}, settings)
    elif channel == "webhook":
        url = conf if isinstance(conf, str) else (conf or {}).get("url")
        if not url:
            raise NotifyError("webhook needs 'url'")
        headers = (conf.get("headers") or {}) if isinstance(conf, dict) else {}
        await post_json(str(url), msg.payload, settings, {str(k): str(v) for k, v in headers.items()})
    elif channel == "github":
        await send_github_status(conf if isinstance(conf, dict) else {}, msg, settings)
    else:
        raise NotifyError(f"unknown notification channel {channel!r} (known: {', '.join(CHANNELS)})")


async def reachable(host: str, port: int, settings: Settings, what: str = "") -> IPAddress:
    """The checked address of ``host`` (``kraken.notify.targets``); NotifyError when it is refused."""
    try:
        return await resolve_checked(host, port, settings.notify_deny_networks, settings.notify_allow_networks)
    except TargetRefused as exc:
        raise NotifyError(f"{what}{exc}") from None


async def post_json(url: str, body: Any, settings: Settings, headers: dict[str, str] | None = None) -> None:
    """POST to ``url`` at an address the settings allow (``kraken.notify.targets``), pinned: the
    request goes to the address that was checked, with the URL's host name as Host (and TLS SNI)."""
    import httpx  # loaded by the first notification sent, not by every server at start (#13)

    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise NotifyError(f"not a URL: {url!r} ({exc})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise NotifyError(f"not an http(s) URL: {url!r}")
    port = target.port or (443 if target.scheme == "https" else 80)
    address = await reachable(target.host, port, settings)
    pinned = target.copy_with(host=str(address))
    sent_headers = {"Host": target.netloc.decode("ascii"), **(headers or {})}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        request = client.build_request("POST", pinned, json=body, headers=sent_headers)
        if target.scheme == "https":
            request.extensions["sni_hostname"] = target.host
        resp = await client.send(request)
    if resp.status_code >= 300:
        raise NotifyError(f"{url} answered {resp.status_code}: {resp.text[:200]}")


async def send_slack(conf: Any, msg: Message, settings: Settings) -> None:
    conf = conf if isinstance(conf, dict) else {}
    url = conf.get("webhook") or conf.get("url") or settings.slack_webhook_url
    if not url:
        raise NotifyError("slack needs 'webhook' (an incoming webhook URL) or KRAKEN_SLACK_WEBHOOK_URL")
    body: dict[str, Any] = {"text": f"*{msg.subject}*\n{msg.text}\n<{msg.url}|details>"}
    if conf.get("channel"):
        body["channel"] = conf["channel"] if str(conf["channel"]).startswith("#") else f"#{conf['channel']}"
    await post_json(str(url), body, settings)


async def send_email(conf: Any, msg: Message, settings: Settings) -> None:
    to = recipients(conf)
    if not to:
        raise NotifyError("email needs recipients ('to' or an address)")
    if not settings.smtp_host:
        raise NotifyError("no SMTP server is configured (KRAKEN_SMTP_HOST)")
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = ", ".join(to)
    email["Subject"] = (conf.get("subject") if isinstance(conf, dict) else None) or msg.subject
    email.set_content(f"{msg.text}\n\n{msg.url}\n")
    await reachable(settings.smtp_host, settings.smtp_port, settings, "SMTP server: ")

    def deliver() -> None:
        cls = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
        assert settings.smtp_host is not None
        with cls(settings.smtp_host, settings.smtp_port, timeout=HTTP_TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(email)

    await asyncio.to_thread(deliver)


GITHUB_STATES = {"passed": "success", "failed": "failure", None: "pending"}


async def send_github_status(conf: dict[str, Any], msg: Message, settings: Settings) -> None:
    token = conf.get("token")
    credentials = conf.get("credentials")  # the original Kraken's "user:token"
    repo = conf.get("repo") or msg.repo
    sha = conf.get("commit") or msg.commit
    if not token and not credentials:
        raise NotifyError("github needs 'token' (e.g. \"#{secrets.github_token}\") or 'credentials' (user:token)")
    if not repo or "/" not in str(repo):
        raise NotifyError("github needs 'repo' (owner/name); the flow's trigger names none")
    if not sha:
        raise NotifyError("github: the flow has no commit to set a status on")
    api = str(conf.get("api_url") or settings.github_api_url).rstrip("/")
    body = {
        "state": GITHUB_STATES.get(msg.result, "error"),
        "target_url": msg.url,
        "description": msg.subject[:140],
        "context": conf.get("context") or msg.context,
    }
    auth = f"Bearer {token}" if token else "Basic " + base64.b64encode(str(credentials).encode()).decode()
    headers = {"Authorization": auth, "Accept": "application/vnd.github+json"}
    await post_json(f"{api}/repos/{repo}/statuses/{sha}", body, settings, headers)
