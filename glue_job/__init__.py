"""TelcoPulse stream job: event contract, pure transforms, per-batch writer and readers.

Ships to AWS Glue as a small wheel; imports neither ``backend`` nor streamlit.
"""
