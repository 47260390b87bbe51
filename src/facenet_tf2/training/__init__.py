"""The training core and the trainers' losses, sampling and triplet selection."""
