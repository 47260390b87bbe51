from facenet_tf2.commands.decode_msceleb_dataset import cli

if __name__ == '__main__':
    cli()
