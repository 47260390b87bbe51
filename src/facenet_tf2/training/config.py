"""A training run's configuration: the trainers' flags as typed, frozen dataclasses, made once from
the command line and validated in one place.

`TrainingConfig` holds the flags both trainers share (same names as the flags; their defaults are
the original's and live with the flags in options.py), `SoftmaxConfig` and `TripletConfig` add each
trainer's own. `validate()` refuses, with one line each, what would fail later; it runs before
any model is built. The library takes these objects, never the argparse Namespace.
"""
import dataclasses
import importlib
import os
from dataclasses import dataclass

from facenet_tf2.errors import TrainingInputError
from facenet_tf2.pretrained import PRETRAINED_MODELS
from facenet_tf2.runfiles import read_learning_rate_schedule

# Flags that do not change what a run computes: a restart may differ in them and still resume.
NOT_PART_OF_THE_RUN = frozenset({'no_resume', 'gpu_memory_fraction', 'nrof_preprocess_threads', 'jit_compile'})


@dataclass(frozen=True)
class LfwProtocol:
    """How a run evaluates on LFW (or any pairs file) after each epoch."""
    nrof_folds: int
    batch_size: int
    distance_metric: int = 0
    use_flipped_images: bool = False
    subtract_mean: bool = False
    use_fixed_image_standardization: bool = False


@dataclass(frozen=True)
class TrainingConfig:  # pylint: disable=too-many-instance-attributes
    """The flags train_softmax.py and train_tripletloss.py share."""
    logs_base_dir: str
    models_base_dir: str
    gpu_memory_fraction: float
    pretrained_model: str | None
    data_dir: str
    model_def: str
    max_nrof_epochs: int
    batch_size: int
    image_size: int
    epoch_size: int
    embedding_size: int
    random_crop: bool
    random_flip: bool
    keep_probability: float
    weight_decay: float
    optimizer: str
    learning_rate: float
    learning_rate_decay_epochs: int
    learning_rate_decay_factor: float
    moving_average_decay: float
    seed: int
    learning_rate_schedule_file: str
    lfw_pairs: str
    lfw_dir: str
    lfw_nrof_folds: int
    distribution: str
    sync_batch_norm: bool
    precision: str
    jit_compile: bool
    no_resume: bool

    @classmethod
    def from_arguments(cls, args):
        """The configuration of parsed flags (an argparse Namespace holding at least every field)."""
        return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        return dataclasses.asdict(self)

    def run_arguments(self):
        """What identifies a run for resuming: every flag that changes what it computes."""
        return {key: value for key, value in sorted(self.as_dict().items()) if key not in NOT_PART_OF_THE_RUN}

    def lfw_protocol(self):
        """The LFW evaluation of this trainer (the triplet trainer has the original's defaults only)."""
        return LfwProtocol(nrof_folds=self.lfw_nrof_folds, batch_size=self.batch_size)

    def logs_weight_histograms(self):
        """--log_histograms (train_softmax.py only)."""
        return False

    def validate(self):
        """Refuses, with one line each, what would fail later: run before building anything."""
        data_dir = os.path.expanduser(self.data_dir)
        if not os.path.isdir(data_dir):
            raise TrainingInputError(f'--data_dir {self.data_dir}: no such folder; give the folder of aligned faces, '
                                     'one sub-folder per identity')
        try:
            importlib.import_module(self.model_def)
        except ImportError as e:
            raise TrainingInputError(f'--model_def {self.model_def}: cannot import it ({e}); use e.g. '
                                     'models.inception_resnet_v1, models.inception_resnet_v2, models.squeezenet or '
                                     'models.dummy') from None
        if self.learning_rate <= 0:
            schedule = os.path.expanduser(self.learning_rate_schedule_file)
            if not os.path.isfile(schedule):
                raise TrainingInputError(f'--learning_rate_schedule_file {self.learning_rate_schedule_file}: no such '
                                         'file; give a schedule file (see data/) or a positive --learning_rate')
            try:
                read_learning_rate_schedule(schedule)
            except ValueError as e:
                raise TrainingInputError(f'{e}; fix the schedule file') from None
        if self.lfw_dir:
            if not os.path.isdir(os.path.expanduser(self.lfw_dir)):
                raise TrainingInputError(f'--lfw_dir {self.lfw_dir}: no such folder; give the aligned LFW folder or '
                                         'leave --lfw_dir out')
            if not os.path.isfile(os.path.expanduser(self.lfw_pairs)):
                raise TrainingInputError(f'--lfw_pairs {self.lfw_pairs}: no such file, and --lfw_dir needs it; give '
                                         'the pairs file (LFW pairs.txt or one from generate_pairs.py)')
        pretrained = os.path.expanduser(self.pretrained_model) if self.pretrained_model else None
        if pretrained and not os.path.exists(pretrained) and not os.path.exists(pretrained + '.index') \
                and self.pretrained_model not in PRETRAINED_MODELS:
            raise TrainingInputError(f'--pretrained_model {self.pretrained_model}: no such file or folder, nor a '
                                     f'pretrained model name ({", ".join(PRETRAINED_MODELS)})')
        if not 0.0 < self.keep_probability <= 1.0:
            raise TrainingInputError(f'--keep_probability {self.keep_probability}: must be in (0, 1]')


@dataclass(frozen=True)
class SoftmaxConfig(TrainingConfig):  # pylint: disable=too-many-instance-attributes
    """train_softmax.py: the classifier head, its losses, validation split and LFW protocol."""
    random_rotate: bool
    use_fixed_image_standardization: bool
    center_loss_factor: float
    center_loss_alfa: float
    prelogits_norm_loss_factor: float
    prelogits_norm_p: float
    prelogits_hist_max: float
    nrof_preprocess_threads: int
    log_histograms: bool
    filter_filename: str
    filter_percentile: float
    filter_min_nrof_images_per_class: int
    validate_every_n_epochs: int
    validation_set_split_ratio: float
    min_nrof_val_images_per_class: float
    lfw_batch_size: int
    lfw_distance_metric: int
    lfw_use_flipped_images: bool
    lfw_subtract_mean: bool
    loss: str
    margin_s: float | None
    margin_m: float | None

    def lfw_protocol(self):
        return LfwProtocol(nrof_folds=self.lfw_nrof_folds, batch_size=self.lfw_batch_size,
                           distance_metric=self.lfw_distance_metric, use_flipped_images=self.lfw_use_flipped_images,
                           subtract_mean=self.lfw_subtract_mean,
                           use_fixed_image_standardization=self.use_fixed_image_standardization)

    def logs_weight_histograms(self):
        return self.log_histograms

    def validate(self):
        super().validate()
        if self.filter_filename and not os.path.isfile(os.path.expanduser(self.filter_filename)):
            raise TrainingInputError(f'--filter_filename {self.filter_filename}: no such file; write it with '
                                     'calculate_filtering_metrics.py or leave the option out')
        if self.loss == 'softmax' and (self.margin_s is not None or self.margin_m is not None):
            raise TrainingInputError('--margin_s and --margin_m apply to --loss arcface or cosface, not softmax')


@dataclass(frozen=True)
class TripletConfig(TrainingConfig):
    """train_tripletloss.py: how people are sampled and triplets formed."""
    people_per_batch: int
    images_per_person: int
    alpha: float
    triplet_strategy: str

    def validate(self):
        super().validate()
        if self.images_per_person < 2:
            raise TrainingInputError(f'--images_per_person {self.images_per_person}: a triplet needs 2 images of a '
                                     'person; use 2 or more')
        if self.triplet_strategy == 'vggface':
            if self.batch_size % 3:
                raise TrainingInputError(f'--batch_size {self.batch_size} is not a multiple of 3: a batch holds whole '
                                         'triplets (anchor, positive, negative); use e.g. '
                                         f'{3 * max(1, self.batch_size // 3)}')
            if self.people_per_batch < 2:
                raise TrainingInputError(f'--people_per_batch {self.people_per_batch}: negatives come from other '
                                         'people; use 2 or more')
            if self.people_per_batch * self.images_per_person < self.batch_size:
                raise TrainingInputError(f'--people_per_batch {self.people_per_batch} x --images_per_person '
                                         f'{self.images_per_person} = {self.people_per_batch * self.images_per_person} '
                                         f'images per sample, fewer than one --batch_size {self.batch_size}; sample '
                                         'more or lower --batch_size')
        elif self.batch_size % self.images_per_person or self.batch_size // self.images_per_person < 2:
            raise TrainingInputError(f'--triplet_strategy {self.triplet_strategy} trains on batches of P people x K '
                                     f'images with K = --images_per_person {self.images_per_person}: --batch_size '
                                     f'{self.batch_size} must be a multiple of it holding 2 or more people; use e.g. '
                                     '--images_per_person 3 with --batch_size 90')
