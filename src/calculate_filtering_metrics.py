"""The original's calculate_filtering_metrics.py, run by path; its body is facenet_tf2.commands.calculate_filtering_metrics."""
from facenet_tf2.commands.calculate_filtering_metrics import cli

if __name__ == '__main__':
    cli()
