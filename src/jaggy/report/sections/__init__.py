"""Report sections; every module here registers its sections with `register_section`."""
