from automill.cli.main import app

app()
