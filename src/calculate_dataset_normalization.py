from facenet_tf2.commands.calculate_dataset_normalization import cli

if __name__ == '__main__':
    cli()
