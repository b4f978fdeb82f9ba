"""The pages, one module per group: auth, dashboard, stock, trace, alerts, station (the workstation's
scanner). Views are thin: they read forms, call selectors and services, and render."""
