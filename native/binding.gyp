{
  # charnn's native backend. Built by scripts/build-native.mjs (npm's "install" script).
  # The kernels are compiled once per instruction set into separate static libraries, each with
  # its own -m flags, and chosen at run time (see src/runtime.cc for why not -march=native).
  'variables': {
    'charnn_cflags': [
      '-O3', '-fPIC', '-fvisibility=hidden', '-fno-math-errno', '-ffp-contract=fast',
      '-fno-lto', '-Wno-psabi', '-Wno-unknown-pragmas', '-Wno-maybe-uninitialized'
    ],
  },
  'targets': [
    {
      'target_name': 'charnn_native',
      'sources': ['src/addon.cc', 'src/runtime.cc', 'src/k_base.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS'],
      'cflags!': ['-fno-exceptions', '-O2'],
      'cflags_cc!': ['-fno-exceptions', '-O2'],
      'cflags': ['<@(charnn_cflags)'],
      'cflags_cc': ['<@(charnn_cflags)', '-fno-exceptions'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'NO',
        'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
        'MACOSX_DEPLOYMENT_TARGET': '11.0',
        'OTHER_CPLUSPLUSFLAGS': ['<@(charnn_cflags)'],
      },
      'conditions': [
        ['target_arch=="x64"', {
          'dependencies': ['charnn_avx2', 'charnn_avx512'],
        }],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'charnn_avx2',
          'type': 'static_library',
          'sources': ['src/k_avx2.cc'],
          'cflags': ['<@(charnn_cflags)', '-mavx2', '-mfma'],
          'cflags_cc': ['<@(charnn_cflags)', '-mavx2', '-mfma'],
          'xcode_settings': {
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'MACOSX_DEPLOYMENT_TARGET': '11.0',
            'OTHER_CPLUSPLUSFLAGS': ['<@(charnn_cflags)', '-mavx2', '-mfma'],
          },
        },
        {
          'target_name': 'charnn_avx512',
          'type': 'static_library',
          'sources': ['src/k_avx512.cc'],
          'cflags': ['<@(charnn_cflags)', '-mavx512f', '-mavx2', '-mfma'],
          'cflags_cc': ['<@(charnn_cflags)', '-mavx512f', '-mavx2', '-mfma'],
          'xcode_settings': {
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'MACOSX_DEPLOYMENT_TARGET': '11.0',
            'OTHER_CPLUSPLUSFLAGS': ['<@(charnn_cflags)', '-mavx512f', '-mavx2', '-mfma'],
          },
        },
      ],
    }],
  ],
}
