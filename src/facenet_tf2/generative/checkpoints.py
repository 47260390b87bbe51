"""VAE checkpoints by original variable name, and the `--vae_def` modules.

A VAE checkpoint is a TF1 name-based bundle of the original's variable names (encoder/..., decoder/...):
what the original's `tf.train.Saver(tf.trainable_variables())` wrote as `model.ckpt-<step>`, and what
train_vae.py writes here as `model-<subdir>.ckpt-<step>` with its `checkpoint` state file. Either
loads into the Keras VAE by name; a folder means its latest checkpoint.
"""
import importlib
import os

import numpy as np
import tensorflow as tf

from facenet_tf2.errors import ModelLoadError, UserError
from facenet_tf2.generative import models
from facenet_tf2.generative.models import original_weights, vae_variable_name

LATENT_VARIABLE = 'encoder/Fc_1/weights'


def vae_class(vae_def):
    """The `Vae` class of `--vae_def`: a module with a `Vae(latent_variable_dim)` class, e.g. the
    original's generative.models.dfc_vae (also as src.generative.models.dfc_vae, the original's
    default), or one of the architecture names (dfc_vae, dfc_vae_large, dfc_vae_resnet)."""
    candidates = [vae_def] + ([vae_def[len('src.'):]] if vae_def.startswith('src.') else [])
    for name in candidates:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue
            raise
        if not hasattr(module, 'Vae'):
            raise UserError(f'--vae_def {vae_def}: the module has no Vae class; give e.g. generative.models.dfc_vae')
        return module.Vae
    short = vae_def.rsplit('.', 1)[-1]
    if short in models.ARCHITECTURES:
        return models.ARCHITECTURE_CLASSES[short]
    raise UserError(f'--vae_def {vae_def}: no such module; give generative.models.dfc_vae, dfc_vae_large or '
                    'dfc_vae_resnet')


def checkpoint_prefix(path):
    """The checkpoint prefix of `path`: a prefix itself (model.ckpt-500) or a folder (its latest)."""
    expanded = os.path.expanduser(str(path))
    if os.path.isdir(expanded):
        latest = tf.train.latest_checkpoint(expanded)
        if latest is None:
            raise ModelLoadError(path, 'no VAE checkpoint in this folder (no `checkpoint` file naming one)')
        return latest
    if not os.path.exists(expanded + '.index'):
        raise ModelLoadError(path, 'no such VAE checkpoint (expected <prefix>.index, e.g. model.ckpt-50000)')
    return expanded


def read_vae_weights(path):
    """{original variable name: array} of the VAE checkpoint at `path`."""
    prefix = checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ModelLoadError(path, f'cannot read the checkpoint ({str(e).splitlines()[0]})') from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith(('encoder/', 'decoder/'))}


def assign_original_weights(vae, weights, source='weights'):
    """Sets every variable of the built `vae` from {original name: array}. A checkpoint of another
    latent size or architecture is refused in one line."""
    if LATENT_VARIABLE in weights:
        latent = int(np.shape(weights[LATENT_VARIABLE])[-1])
        if latent != vae.latent_variable_dim:
            raise UserError(f'{source}: the VAE checkpoint has latent variables of size {latent}, not '
                            f'{vae.latent_variable_dim}; pass --latent_var_size {latent}')
    missing, wrong = [], []
    for variable in vae.weights:
        name = vae_variable_name(vae, variable)
        if name not in weights:
            missing.append(name)
        elif tuple(np.shape(weights[name])) != tuple(variable.shape):
            wrong.append(f'{name} {tuple(np.shape(weights[name]))} (model {tuple(variable.shape)})')
    if missing or wrong:
        problem = (f'{len(missing)} variables missing, e.g. {", ".join(missing[:2])}' if missing
                   else f'shape mismatch: {wrong[0]}')
        raise ModelLoadError(source, f'not a checkpoint of {vae.architecture} ({problem}); check --vae_def')
    for variable in vae.weights:
        variable.assign(weights[vae_variable_name(vae, variable)])


def load_vae(vae_def, latent_var_size, checkpoint):
    """The built VAE of `--vae_def` with the weights of `checkpoint`."""
    vae = vae_class(vae_def)(latent_var_size).build_variables()
    assign_original_weights(vae, read_vae_weights(checkpoint), checkpoint)
    return vae


def vae_weights(vae):
    """What a VAE checkpoint holds (the original's Saver saved the trainable variables, the BatchNorm
    moving averages among them)."""
    return original_weights(vae)
