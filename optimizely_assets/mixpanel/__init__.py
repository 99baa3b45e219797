"""An optional feed of canonical days into Mixpanel's Import API (group ``mixpanel``)."""
