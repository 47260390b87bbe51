from facenet_tf2.commands.download_and_extract import cli, download_and_extract_file  # noqa: F401

if __name__ == '__main__':
    cli()
