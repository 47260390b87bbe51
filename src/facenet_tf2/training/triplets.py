"""Triplets for train_tripletloss.py: the original's offline selection and loss, exact and vectorised,
and online mining of P x K batches inside the training step.

Offline (the original, `--triplet_strategy vggface`): `sample_people` draws a sample of identities,
the model embeds it, `select_triplets` extends every anchor-positive pair of a class with one random
negative among those that violate the margin (VGG-Face's rule) and training runs on those triplets
with `triplet_loss`. Random draws come from the `rng` passed in (NumPy's global state by default, as
in the original) in the original's order, so with the same generator state they are the original's
draws, and a run resumes by restoring that state.

Online (`batch_hard`, `batch_semihard`, `batch_all`): losses over the triplets a batch holds, found
from its labels inside the traced step; `pk_batches` samples such P x K batches on tf.data.
"""
import collections

import numpy as np
import tensorflow as tf

from facenet_tf2.pipeline import decode_and_preprocess

TripletCandidates = collections.namedtuple('TripletCandidates', 'pairs pos_dist_sqr offsets flat')
TripletCandidates.__doc__ = """The original's candidate negatives of every anchor-positive pair.

pairs [M, 2] (anchor, positive) in the original's loop order; pos_dist_sqr [M] float64; the
candidates of pair k are flat[offsets[k]:offsets[k + 1]], ascending sample indices."""


def sample_people(dataset, people_per_batch, images_per_person, rng=np.random):
    """Draws people_per_batch * images_per_person image paths class by class, as the original.

    Classes are visited in a shuffled order; each gives min(its size, images_per_person, what is
    still missing) of its images in a shuffled order, so the last class may give fewer, and classes
    smaller than images_per_person make the sample span more than people_per_batch classes.
    Returns (image_paths, nrof_images_per_class) with each class's images contiguous. rng: a NumPy
    Generator or RandomState, or the np.random module (the original's global state); the draws are
    the original's shuffles in its order. Where the original ran out of classes with an
    IndexError, the sample stops short holding every class.
    """
    nrof_images = people_per_batch * images_per_person
    class_indices = np.arange(len(dataset))
    rng.shuffle(class_indices)
    image_paths, nrof_images_per_class = [], []
    for class_index in class_indices:
        if len(image_paths) >= nrof_images:
            break
        class_paths = dataset[class_index].image_paths
        image_indices = np.arange(len(class_paths))
        rng.shuffle(image_indices)
        count = min(len(class_paths), images_per_person, nrof_images - len(image_paths))
        image_paths += [class_paths[j] for j in image_indices[:count]]
        nrof_images_per_class.append(count)
    return image_paths, nrof_images_per_class


def _anchor_classes(nrof_images_per_class, people_per_batch, nrof_embeddings):
    """(start, size) of the classes the original takes anchors from: the first people_per_batch
    (all, where there are fewer). Later classes only serve as negatives, as in the original."""
    sizes = [int(n) for n in nrof_images_per_class]
    if sum(sizes) > nrof_embeddings:
        raise ValueError(f'the classes hold {sum(sizes)} images but there are {nrof_embeddings} embeddings')
    if people_per_batch is not None:
        sizes = sizes[:people_per_batch]
    starts = np.cumsum([0] + sizes[:-1])
    return list(zip(starts.tolist(), sizes))


def anchor_positive_pairs(nrof_images_per_class, people_per_batch=None):
    """[M, 2] (anchor, positive) sample indices of the original's selection, in its loop order."""
    pairs = [start + np.stack(np.triu_indices(size, 1), 1)
             for start, size in _anchor_classes(nrof_images_per_class, people_per_batch, sum(nrof_images_per_class))]
    return np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), np.int64)


_DISTANCE_BLOCK_ROWS = 2048


def _near_thresholds(dist_sqr, rows, thresholds, tolerance):
    """Whether row rows[k] of dist_sqr has an entry within `tolerance` of thresholds[k], for every k.

    Only entries inside their row's range of thresholds can be; those are laid out on one axis,
    each row in its own band, so one sort and one searchsorted answer every row.
    """
    first = np.flatnonzero(np.diff(rows, prepend=-1))  # rows[] ascends: each row's thresholds are contiguous
    row_low = np.full(len(dist_sqr), np.inf)
    row_high = np.full(len(dist_sqr), -np.inf)
    row_low[rows[first]] = np.fmin.reduceat(thresholds, first) - tolerance
    row_high[rows[first]] = np.fmax.reduceat(thresholds, first) + tolerance
    in_range_rows, columns = np.nonzero((dist_sqr >= row_low[:, None]) & (dist_sqr <= row_high[:, None]))
    if not in_range_rows.size:
        return np.zeros(len(thresholds), bool)
    base = np.nanmin(row_low[rows])  # a NaN embedding (an unreadable image) has NaN thresholds
    band = np.nanmax(row_high[rows]) - base + 1.0
    # Shifting into the bands rounds by a few ulps of the largest band offset; widen by far more.
    tolerance = tolerance + len(dist_sqr) * band * 1e-14
    line = np.sort(dist_sqr[in_range_rows, columns] - base + band * in_range_rows)
    centre = thresholds - base + band * rows
    return np.searchsorted(line, centre - tolerance, 'left') != np.searchsorted(line, centre + tolerance, 'right')


def _class_candidates(embeddings, nrof_images_per_class, people_per_batch, alpha):
    """Per anchor class with two or more images, in the original's order: (pairs [m, 2],
    pos_dist_sqr [m], is_candidate [m, nrof_embeddings] bool).

    The original tests `neg_dists_sqr - pos_dist_sqr < alpha` on distances summed over squared
    differences in float64. Here the distances come from matrix products and are compared in
    float32; the pairs with an entry close enough to their threshold for either to matter have
    those entries recomputed the original's way, so every decision is the original's, bit for bit.
    """
    emb = np.asarray(embeddings, np.float64)  # train() hands select_triplets a float64 array
    sq_norms = np.einsum('ij,ij->i', emb, emb)
    # Float32 rounds |a - b|^2 <= 2 (|a|^2 + |b|^2) and the threshold by 6e-8 of their size, the
    # float64 product by a few 1e-16: entries farther than this from their threshold are decided right.
    tolerance = 1e-6 * (1.0 + 4.0 * np.nanmax(sq_norms, initial=0.0) + abs(alpha))
    block_start, block = 0, np.zeros((0, len(emb)))
    for start, size in _anchor_classes(nrof_images_per_class, people_per_batch, len(emb)):
        if size < 2:
            continue
        if start + size - 1 > block_start + len(block):
            # Products for many classes at once: one BLAS call per class is slow where its threads contend.
            block_start, stop = start, start + max(size - 1, _DISTANCE_BLOCK_ROWS)
            block = emb[start:stop] @ emb.T
            block *= -2.0
            block += sq_norms[start:stop, None]
            block += sq_norms[None, :]
        anchor_rows, positive_rows = np.triu_indices(size, 1)  # the original's (j - 1, pair) loop order
        anchors, positives = start + anchor_rows, start + positive_rows
        pos_dist_sqr = np.sum(np.square(emb[anchors] - emb[positives]), 1)
        dist_sqr = block[start - block_start:start - block_start + size - 1].copy()
        dist_sqr[:, start:start + size] = np.inf  # the original's NaN: never a candidate
        thresholds = pos_dist_sqr + alpha
        is_candidate = dist_sqr.astype(np.float32)[anchor_rows] < thresholds.astype(np.float32)[:, None]
        near = np.flatnonzero(_near_thresholds(dist_sqr, anchor_rows, thresholds, tolerance))
        if near.size:
            near_rows = dist_sqr[anchor_rows[near]]
            pair, columns = np.nonzero(np.abs(near_rows - thresholds[near, None]) <= tolerance)
            pair = near[pair]
            exact = np.sum(np.square(emb[anchors[pair]] - emb[columns]), 1)
            is_candidate[pair, columns] = exact - pos_dist_sqr[pair] < alpha
        yield np.stack([anchors, positives], 1), pos_dist_sqr, is_candidate


def triplet_candidates(embeddings, nrof_images_per_class, alpha, people_per_batch=None):
    """Every anchor-positive pair of the original's selection with its candidate negatives, as a
    TripletCandidates. people_per_batch: the classes that give anchors (default all)."""
    pairs, pos_dist_sqr, counts, flat = [np.zeros((0, 2), np.int64)], [np.zeros(0)], [np.zeros(0, np.int64)], \
        [np.zeros(0, np.int64)]
    for class_pairs, class_pos, is_candidate in _class_candidates(embeddings, nrof_images_per_class,
                                                                  people_per_batch, alpha):
        rows, columns = np.nonzero(is_candidate)
        pairs.append(class_pairs)
        pos_dist_sqr.append(class_pos)
        counts.append(np.bincount(rows, minlength=len(class_pairs)))
        flat.append(columns)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    return TripletCandidates(np.concatenate(pairs).astype(np.int64), np.concatenate(pos_dist_sqr),
                             offsets.astype(np.int64), np.concatenate(flat).astype(np.int64))


_BITS_SET = np.array([bin(byte).count('1') for byte in range(256)], np.uint8)


def _bits_set(packed):
    """Set bits per byte (np.bitwise_count where NumPy has it, >= 2.0)."""
    return np.bitwise_count(packed) if hasattr(np, 'bitwise_count') else _BITS_SET[packed]


def _nth_true(packed, n):
    """Column of the (n+1)-th True in each row of a boolean matrix packed along rows (np.packbits)."""
    rows = np.arange(len(n))
    cumulative = np.cumsum(_bits_set(packed), axis=1, dtype=np.int32)
    byte = np.count_nonzero(cumulative <= n[:, None], axis=1)
    before = np.where(byte > 0, cumulative[rows, np.maximum(byte - 1, 0)], 0)
    bits = np.unpackbits(packed[rows, byte][:, None], axis=1)
    return 8 * byte + np.count_nonzero(np.cumsum(bits, axis=1) <= (n - before)[:, None], axis=1)


def _random_below(rng, highs):
    """One uniform integer in [0, high) per entry: the same stream as one randint/integers call per
    entry, which is how the original drew them."""
    if hasattr(rng, 'integers'):
        return rng.integers(highs)
    return rng.randint(highs)


def select_triplet_indices(embeddings, nrof_images_per_class, people_per_batch, alpha, rng=np.random):
    """(triplets [T, 3] int64 rows of sample indices (anchor, positive, negative), number of
    anchor-positive pairs): select_triplets on indices, in the original's shuffled order."""
    chosen, nrof_pairs = [np.zeros((0, 3), np.int64)], 0
    for pairs, _, is_candidate in _class_candidates(embeddings, nrof_images_per_class, people_per_batch, alpha):
        nrof_pairs += len(pairs)
        # Bit-packed rows keep finding the drawn candidate cheap when nearly every image is one.
        packed = np.packbits(is_candidate, axis=1)
        counts = _bits_set(packed).sum(1, dtype=np.int64)
        has_candidates = counts > 0
        if has_candidates.any():
            picks = _random_below(rng, counts[has_candidates])
            negatives = _nth_true(packed[has_candidates], picks)
            chosen.append(np.column_stack([pairs[has_candidates], negatives]))
    triplets = np.concatenate(chosen).astype(np.int64)
    return triplets[rng.permutation(len(triplets))], nrof_pairs


def select_triplets(embeddings, nrof_images_per_class, image_paths, people_per_batch, alpha, rng=np.random):
    """(list of (anchor, positive, negative) path tuples, shuffled; the number of anchor-positive
    pairs; the number of triplets) for a sample of people_per_batch classes.

    Fidelity: the original select_triplets, whose second value was also the pair count. For each pair of the first people_per_batch classes, one negative is drawn uniformly among
    all sample images of other classes with d_an^2 - d_ap^2 < alpha; a pair without any forms no
    triplet. Given a generator in the same state, the draws and the result are the original's.
    """
    indices, nrof_pairs = select_triplet_indices(embeddings, nrof_images_per_class, people_per_batch, alpha, rng)
    triplets = [tuple(image_paths[i] for i in row) for row in indices.tolist()]
    return triplets, nrof_pairs, len(triplets)


def triplet_basic_loss(anchor, positive, negative, alpha):
    """Per triplet |a-p|^2 - |a-n|^2 + alpha, as the original's graph computed it."""
    pos_dist = tf.reduce_sum(tf.square(tf.subtract(anchor, positive)), 1)
    neg_dist = tf.reduce_sum(tf.square(tf.subtract(anchor, negative)), 1)
    return tf.add(tf.subtract(pos_dist, neg_dist), alpha)


def triplet_loss(anchor, positive, negative, alpha):
    """Mean over triplets of max(|a-p|^2 - |a-n|^2 + alpha, 0) (the original facenet.triplet_loss)."""
    return tf.reduce_mean(tf.maximum(triplet_basic_loss(anchor, positive, negative, alpha), 0.0), 0)


# Online mining. Distances are squared Euclidean, like the original's loss, so --alpha means the
# same for every strategy. Each returns (loss, metrics): nrof_triplets counts the triplets (or
# anchors, pairs) the loss averages over, nrof_active those with a positive loss. A batch without
# any (no class with two images, or a single class) gives loss 0 and nrof_triplets 0, never NaN.

def pairwise_squared_distances(embeddings):
    """[B, B] squared Euclidean distances, clipped at 0 against rounding, 0 on the diagonal."""
    embeddings = tf.cast(embeddings, tf.float32)
    dot = tf.matmul(embeddings, embeddings, transpose_b=True)
    sq_norms = tf.linalg.diag_part(dot)
    dist_sqr = tf.maximum(sq_norms[:, None] - 2.0 * dot + sq_norms[None, :], 0.0)
    return tf.linalg.set_diag(dist_sqr, tf.zeros_like(sq_norms))


def _label_masks(labels):
    """(positive [B, B]: same label, not itself; negative [B, B]: other label)."""
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    return tf.logical_and(same, not_self), tf.logical_not(same)


def _mean_and_metrics(losses, valid, extra=None):
    """Mean of `losses` over `valid`, with the counts; `extra` adds metrics."""
    losses = tf.where(valid, losses, 0.0)
    nrof_triplets = tf.reduce_sum(tf.cast(valid, tf.int32))
    nrof_active = tf.reduce_sum(tf.cast(losses > 0.0, tf.int32))
    metrics = {'nrof_triplets': nrof_triplets, 'nrof_active': nrof_active,
               'fraction_active': tf.math.divide_no_nan(tf.cast(nrof_active, tf.float32),
                                                        tf.cast(nrof_triplets, tf.float32))}
    metrics.update(extra or {})
    return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(nrof_triplets, tf.float32)), metrics


def batch_hard(embeddings, labels, alpha):
    """Batch-hard (Hermans et al. 2017): per anchor with a positive and a negative in the batch,
    max(hardest positive d_ap^2 - hardest negative d_an^2 + alpha, 0); mean over those anchors."""
    dist_sqr = pairwise_squared_distances(embeddings)
    positive, negative = _label_masks(labels)
    above_all = tf.stop_gradient(tf.reduce_max(dist_sqr) + 1.0)
    hardest_positive = tf.reduce_max(tf.where(positive, dist_sqr, 0.0), 1)
    hardest_negative = tf.reduce_min(tf.where(negative, dist_sqr, above_all), 1)
    valid = tf.logical_and(tf.reduce_any(positive, 1), tf.reduce_any(negative, 1))
    return _mean_and_metrics(tf.maximum(hardest_positive - hardest_negative + alpha, 0.0), valid)


def batch_semihard(embeddings, labels, alpha):
    """FaceNet's semi-hard negatives, by the rule TensorFlow Addons' triplet_semihard_loss made common.

    For every ordered anchor-positive pair (a, p): the negative is the nearest one farther from
    the anchor than the positive (d_an^2 > d_ap^2; beyond the margin its loss is 0, so this is
    "within the margin" where one exists); where no negative is farther, the farthest negative.
    Loss: max(d_ap^2 - d_an^2 + alpha, 0), mean over pairs whose anchor has a negative.
    fraction_semihard: the share of those pairs that found a semi-hard negative.
    """
    dist_sqr = pairwise_squared_distances(embeddings)
    positive, negative = _label_masks(labels)
    above_all = tf.stop_gradient(tf.reduce_max(dist_sqr) + 1.0)
    # [a, p, n]: n is a negative of a farther from a than p is.
    farther = tf.logical_and(negative[:, None, :], dist_sqr[:, None, :] > dist_sqr[:, :, None])
    nearest_farther = tf.reduce_min(tf.where(farther, dist_sqr[:, None, :], above_all), 2)
    farthest = tf.reduce_max(tf.where(negative, dist_sqr, 0.0), 1, keepdims=True)
    has_semihard = tf.reduce_any(farther, 2)
    negative_dist_sqr = tf.where(has_semihard, nearest_farther, farthest)
    valid = tf.logical_and(positive, tf.reduce_any(negative, 1, keepdims=True))
    semihard = tf.reduce_sum(tf.cast(tf.logical_and(valid, has_semihard), tf.float32))
    loss, metrics = _mean_and_metrics(tf.maximum(dist_sqr - negative_dist_sqr + alpha, 0.0), valid)
    metrics['fraction_semihard'] = tf.math.divide_no_nan(semihard, tf.cast(metrics['nrof_triplets'], tf.float32))
    return loss, metrics


def batch_all(embeddings, labels, alpha):
    """Batch-all: every triplet (a, p, n) of the batch, max(d_ap^2 - d_an^2 + alpha, 0) averaged over
    the active triplets (positive loss); fraction_active is their share of all valid triplets.
    Memory grows as B^3."""
    dist_sqr = pairwise_squared_distances(embeddings)
    positive, negative = _label_masks(labels)
    valid = tf.logical_and(positive[:, :, None], negative[:, None, :])
    losses = tf.where(valid, tf.maximum(dist_sqr[:, :, None] - dist_sqr[:, None, :] + alpha, 0.0), 0.0)
    _, metrics = _mean_and_metrics(losses, valid)
    loss = tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(metrics['nrof_active'], tf.float32))
    return loss, metrics


ONLINE_STRATEGIES = {'batch_hard': batch_hard, 'batch_semihard': batch_semihard, 'batch_all': batch_all}


def pk_classes(dataset):
    """Indices of the classes a P x K batch can use: those with two or more images."""
    return [index for index, cls in enumerate(dataset) if len(cls.image_paths) >= 2]


def sample_pk(dataset, classes, people_per_batch, images_per_person, rng):
    """One P x K batch: people_per_batch of `classes` without replacement, images_per_person images
    of each, without replacement where the class has enough, else all of them and random repeats.
    Returns (image_paths, labels) with labels the class indices, each class contiguous."""
    if len(classes) < people_per_batch:
        raise ValueError(f'{len(classes)} classes with two or more images, fewer than the '
                         f'{people_per_batch} people a batch needs')
    image_paths, labels = [], []
    for class_index in rng.choice(classes, people_per_batch, replace=False):
        class_paths = dataset[class_index].image_paths
        picks = rng.permutation(len(class_paths))[:images_per_person]
        if len(picks) < images_per_person:
            picks = np.concatenate([picks, rng.integers(0, len(class_paths), images_per_person - len(picks))])
        image_paths += [class_paths[j] for j in picks]
        labels += [int(class_index)] * images_per_person
    return image_paths, labels


def pk_batches(dataset, people_per_batch, images_per_person, seed, start=0):
    """An endless tf.data stream of P x K batches (image_paths [P*K] string, labels [P*K] int32).

    Batch b is sampled by sample_pk with a generator seeded by (seed, b), so the stream is a pure
    function of the seed and a run resumes at batch `start` with no state to save.
    """
    classes = pk_classes(dataset)
    if len(classes) < people_per_batch:
        raise ValueError(f'{len(classes)} classes with two or more images, fewer than the '
                         f'{people_per_batch} people a batch needs')
    batch_size = people_per_batch * images_per_person
    seed = int(seed) if seed is not None else 0

    def sample(batch_index):
        rng = np.random.default_rng([seed, int(batch_index)])
        image_paths, labels = sample_pk(dataset, classes, people_per_batch, images_per_person, rng)
        return np.array(image_paths, dtype=object), np.array(labels, np.int32)

    def batch(batch_index):
        image_paths, labels = tf.numpy_function(sample, [batch_index], [tf.string, tf.int32], stateful=False)
        image_paths.set_shape([batch_size])
        labels.set_shape([batch_size])
        return image_paths, labels

    return tf.data.Dataset.range(int(start), 2 ** 62).map(batch)


def pk_image_batches(dataset, people_per_batch, images_per_person, image_size, control, seed, start=0,
                     unreadable=None, num_parallel_calls=tf.data.AUTOTUNE):
    """pk_batches decoded and augmented by the pipeline: (images [<=P*K, h, w, 3], labels).

    Image i of batch b gets the augmentation seed (seed, b * P * K + i). With `unreadable` (an
    UnreadableImages) a file that cannot be read is recorded there and left out of its batch, which
    keeps the rest; without it, it stops iteration with an error naming it.
    """
    batch_size = people_per_batch * images_per_person
    seed_value = int(seed) if seed is not None else 0
    control = tf.constant(control, tf.int32)

    def one_batch(batch_index, paths_and_labels):
        image_paths, labels = paths_and_labels
        positions = batch_index * batch_size + tf.range(batch_size, dtype=tf.int64)
        seeds = tf.stack([tf.fill([batch_size], tf.constant(seed_value, tf.int64)), positions], 1)
        images = tf.data.Dataset.from_tensor_slices((image_paths, labels, tf.fill([batch_size], control), seeds))
        return decode_and_preprocess(images, image_size, unreadable, num_parallel_calls).batch(batch_size)

    indexed = tf.data.Dataset.zip((tf.data.Dataset.range(int(start), 2 ** 62),
                                   pk_batches(dataset, people_per_batch, images_per_person, seed, start)))
    return indexed.flat_map(one_batch).prefetch(2)
