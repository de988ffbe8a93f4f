"""TelcoPulse backend: settings, producer, emulator, query engines, SQL and CLI.

Never imports streamlit; the dashboard calls into it.
"""
