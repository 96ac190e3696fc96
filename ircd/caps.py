"""The IRCv3 capabilities this server offers (name -> value for CAP LS 302)."""

CAPABILITIES: dict[str, str | None] = {
    "account-notify": None,
    "account-tag": None,
    "away-notify": None,
    "batch": None,
    "cap-notify": None,
    "chghost": None,
    "draft/no-implicit-names": None,
    "echo-message": None,
    "extended-join": None,
    "extended-monitor": None,
    "invite-notify": None,
    "labeled-response": None,
    "message-tags": None,
    "multi-prefix": None,
    "server-time": None,
    "setname": None,
    "standard-replies": None,
    "userhost-in-names": None,
}
