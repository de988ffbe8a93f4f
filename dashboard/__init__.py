"""Dashboard UI helpers (presentation layer): the thin layer between pages and ``backend``.

Pages call into these modules and nothing else: ``page`` sets a page up and loads
data safely, ``cache`` holds the Streamlit caches, ``controls`` the sidebar,
``charts`` the figures and ``panels`` the reusable blocks. This package and the
pages are the only code that imports streamlit.
"""
