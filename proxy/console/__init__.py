"""The rollout console: connections next to their flags and live outcomes, previewed and
confirmed flips, audit. ``proxy.console.app.build_console_app`` builds it; the settings model
(``proxy.console.settings``) is imported by the main config without the app."""
