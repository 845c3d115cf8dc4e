"""``ebgan explore``: an interactive, read-only page over a study's runs, served on 127.0.0.1."""
