"""The original train_tripletloss.py's sampling and selection loops, transcribed line for line with the
random source made a parameter, as the yardstick for facenet_tf2.training.triplets (tests and
benchmarks), and a writer of references in the format of ../shared/reference/train_tripletloss/.

Kept apart from the library on purpose: this is the slow, obviously-the-original form.
"""
import json
import os

import numpy as np


def original_sample_people(dataset, people_per_batch, images_per_person, rng):
    nrof_images = people_per_batch * images_per_person
    class_indices = np.arange(len(dataset))
    rng.shuffle(class_indices)
    i = 0
    image_paths, num_per_class = [], []
    while len(image_paths) < nrof_images:
        class_index = class_indices[i]
        nrof_images_in_class = len(dataset[class_index].image_paths)
        image_indices = np.arange(nrof_images_in_class)
        rng.shuffle(image_indices)
        nrof_images_from_class = min(nrof_images_in_class, images_per_person, nrof_images - len(image_paths))
        idx = image_indices[0:nrof_images_from_class]
        image_paths += [dataset[class_index].image_paths[j] for j in idx]
        num_per_class.append(nrof_images_from_class)
        i += 1
    return image_paths, num_per_class


def original_loops(embeddings, nrof_images_per_class, people_per_batch, alpha, on_pair):
    """Runs the original's loops; calls on_pair(a_idx, p_idx, pos_dist_sqr, all_neg, neg_dists_sqr)."""
    emb_start_idx = 0
    for i in range(people_per_batch):
        nrof_images = int(nrof_images_per_class[i])
        for j in range(1, nrof_images):
            a_idx = emb_start_idx + j - 1
            neg_dists_sqr = np.sum(np.square(embeddings[a_idx] - embeddings), 1)
            for pair in range(j, nrof_images):
                p_idx = emb_start_idx + pair
                pos_dist_sqr = np.sum(np.square(embeddings[a_idx] - embeddings[p_idx]))
                neg_dists_sqr[emb_start_idx:emb_start_idx + nrof_images] = np.nan
                all_neg = np.where(neg_dists_sqr - pos_dist_sqr < alpha)[0]
                on_pair(a_idx, p_idx, pos_dist_sqr, all_neg, neg_dists_sqr)
        emb_start_idx += nrof_images


def original_select_triplets(embeddings, nrof_images_per_class, image_paths, people_per_batch, alpha, rng):
    triplets = []
    num_trips = [0]

    def on_pair(a_idx, p_idx, pos_dist_sqr, all_neg, neg_dists_sqr):
        nrof_random_negs = all_neg.shape[0]
        if nrof_random_negs > 0:
            rnd_idx = rng.randint(nrof_random_negs) if hasattr(rng, 'randint') else rng.integers(nrof_random_negs)
            n_idx = all_neg[rnd_idx]
            triplets.append((image_paths[a_idx], image_paths[p_idx], image_paths[n_idx]))
        num_trips[0] += 1

    original_loops(embeddings, nrof_images_per_class, people_per_batch, alpha, on_pair)
    rng.shuffle(triplets)
    return triplets, num_trips[0], len(triplets)


def original_candidates(embeddings, nrof_images_per_class, people_per_batch, alpha):
    """(pairs, pos_dist_sqr, list of candidate arrays, hardest negative per pair) from the loops."""
    pairs, pos, candidates, hardest = [], [], [], []

    def on_pair(a_idx, p_idx, pos_dist_sqr, all_neg, neg_dists_sqr):
        pairs.append((a_idx, p_idx))
        pos.append(pos_dist_sqr)
        candidates.append(all_neg)
        hardest.append(int(np.nanargmin(neg_dists_sqr)) if np.isfinite(neg_dists_sqr).any() else -1)

    original_loops(np.asarray(embeddings, np.float64), nrof_images_per_class, people_per_batch, alpha, on_pair)
    return np.array(pairs, np.int64).reshape(-1, 2), np.array(pos, np.float64), candidates, np.array(hardest, np.int64)


def _loss_float64(emb, triplets, alpha):
    a, p, n = (emb[triplets[:, k]] for k in range(3))
    basic = np.sum(np.square(a - p), 1) - np.sum(np.square(a - n), 1) + alpha
    return np.maximum(basic, 0.0).mean() if len(basic) else np.nan, basic


def write_reference(json_path, embeddings, nrof_images_per_class, people_per_batch, alpha, extra_alphas=(),
                    loss_fn=None):
    """Writes a reference in the shared format (JSON + NPZ with the same stem) from the loops.

    loss_fn(anchor, positive, negative, alpha) -> float computes the float32 losses (the original's
    TF graph; the caller passes one). Extra alphas go to `alpha<value>/` groups; `hardest/` holds
    every pair with its nearest other-class negative and its loss at each alpha.
    """
    emb32 = np.asarray(embeddings, np.float32)
    emb = emb32.astype(np.float64)
    arrays = {'embeddings': emb32, 'labels': np.repeat(np.arange(len(nrof_images_per_class)), nrof_images_per_class)}
    meta = {'alpha': alpha, 'people_per_batch': people_per_batch,
            'nrof_images_per_class': [int(n) for n in nrof_images_per_class], 'extras': {}}
    hardest_triplets = None
    for group_alpha, prefix in [(alpha, '')] + [(a, f'alpha{a:g}/') for a in extra_alphas]:
        pairs, pos, candidates, hardest = original_candidates(emb, nrof_images_per_class, people_per_batch, group_alpha)
        counts = np.array([len(c) for c in candidates], np.int64)
        arrays[prefix + 'cand_offsets'] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        arrays[prefix + 'cand_flat'] = (np.concatenate(candidates) if candidates else np.zeros(0)).astype(np.int64)
        with_candidates = counts > 0
        triplets = np.column_stack([pairs[with_candidates], [c[0] for c in candidates if len(c)]]).astype(np.int64) \
            if with_candidates.any() else np.zeros((0, 3), np.int64)
        arrays[prefix + 'triplets'] = triplets
        loss64, _ = _loss_float64(emb, triplets, group_alpha)
        arrays[prefix + 'triplet_loss'] = np.float32(loss_fn(*(emb32[triplets[:, k]] for k in range(3)), group_alpha))
        arrays[prefix + 'triplet_loss_float64_numpy'] = np.float64(loss64)
        summary = {'alpha': group_alpha, 'nrof_triplets': int(with_candidates.sum()), 'total_candidates': int(counts.sum())}
        if prefix:
            meta['extras'][prefix.rstrip('/')] = summary
        else:
            arrays['pairs'], arrays['pos_dist_sqr'], arrays['nrof_candidates'] = pairs, pos, counts
            meta.update(summary, nrof_pairs=len(pairs))
            hardest_triplets = np.column_stack([pairs, hardest]).astype(np.int64)
    arrays['hardest/triplets'] = hardest_triplets
    for group_alpha in (alpha,) + tuple(extra_alphas):
        key = f'hardest/triplet_loss_alpha{group_alpha:g}'
        loss64, basic = _loss_float64(emb, hardest_triplets, group_alpha)
        arrays[key] = np.float32(loss_fn(*(emb32[hardest_triplets[:, k]] for k in range(3)), group_alpha))
        arrays[key + '_float64_numpy'] = np.float64(loss64)
        meta['extras'].setdefault('hardest', {})[f'alpha{group_alpha:g}'] = {
            'triplet_loss_tf_float32': float(arrays[key]), 'triplet_loss_float64_numpy': float(loss64),
            'nrof_positive_terms': int((basic > 0).sum()), 'nrof_triplets': len(hardest_triplets)}
    stem = os.path.splitext(json_path)[0]
    np.savez(stem + '.npz', **arrays)
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    return meta, arrays
