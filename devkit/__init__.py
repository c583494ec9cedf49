"""Development kit: what runs the function outside FunctionGraph (context, emulator). Not deployed."""
