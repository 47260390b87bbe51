"""What the port reads off the machine: the CPU's bfloat16 support, which decides --precision bfloat16."""
from facenet_tf2 import devices

X86 = 'processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbugs\t\t: none\n'


def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.setattr(devices.tf.config, 'list_physical_devices', lambda kind=None: [])
    cases = {'avx512_vnni': False, 'avx512_bf16': True, 'amx_tile amx_bf16': True}
    for extra, expected in cases.items():
        cpuinfo = tmp_path / 'cpuinfo'
        cpuinfo.write_text(X86.format(extra=extra))
        assert devices.native_bfloat16(str(cpuinfo)) is expected, extra
        assert 'avx2' in devices.cpu_flags(str(cpuinfo))
    arm = tmp_path / 'arm'
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd sve bf16\n')
    assert devices.native_bfloat16(str(arm)) is True
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd\n')
    assert devices.native_bfloat16(str(arm)) is False
    assert devices.cpu_flags(str(tmp_path / 'missing')) is None
    assert devices.native_bfloat16(str(tmp_path / 'missing')) is True  # nothing to go on: as asked
    monkeypatch.setattr(devices.tf.config, 'list_physical_devices', lambda kind=None: ['GPU:0'])
    assert devices.native_bfloat16(str(arm)) is True
