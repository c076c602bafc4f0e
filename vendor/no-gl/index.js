// charnn runs gpu.js in its `cpu` and `webgpu` modes only. The real `gl` package (headless-gl)
// builds ANGLE from source during `npm install` when its prebuilt binary cannot be downloaded,
// which needs X11 development headers and takes many minutes on two cores. package.json's
// `overrides` puts this stub in its place; gpu.js loads `gl` inside a try/catch and treats the
// error below as "headless WebGL unavailable".
throw new Error('headless-gl is not installed (charnn uses gpu.js in cpu and webgpu modes only)');
