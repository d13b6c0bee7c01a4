"""The peers' side of bench/imaging.sh: one operation, file to file, with Pillow or OpenCV."""
import sys

lib, op, src, dst = sys.argv[1:5]

if lib == "pillow":
    from PIL import Image, ImageFilter
    import numpy as np
    img = Image.open(src)
    if op == "upscale":
        img = img.resize((img.width * 2, img.height * 2), Image.LANCZOS)
    elif op == "downscale":
        img = img.resize((img.width // 4, img.height // 4), Image.LANCZOS)
    elif op == "unsharp":
        img = img.filter(ImageFilter.UnsharpMask(radius=1, percent=80, threshold=1))
    elif op == "denoise":
        img = img.filter(ImageFilter.MedianFilter(3))
    elif op == "whitebalance":
        a = np.asarray(img, dtype=np.float32)
        means = a.reshape(-1, 3).mean(axis=0)
        a = np.clip(a * (means.mean() / means), 0, 255).astype(np.uint8)
        img = Image.fromarray(a)
    img.save(dst, quality=92)
elif lib == "opencv":
    import cv2
    import numpy as np
    img = cv2.imread(src)
    h, w = img.shape[:2]
    if op == "upscale":
        img = cv2.resize(img, (w * 2, h * 2), interpolation=cv2.INTER_LANCZOS4)
    elif op == "downscale":
        img = cv2.resize(img, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    elif op == "unsharp":
        blur = cv2.GaussianBlur(img, (0, 0), 1.0)
        img = cv2.addWeighted(img, 1.8, blur, -0.8, 0)
    elif op == "denoise":
        img = cv2.fastNlMeansDenoisingColored(img, None, 10, 10, 7, 21)
    elif op == "whitebalance":
        a = img.astype(np.float32)
        means = a.reshape(-1, 3).mean(axis=0)
        img = np.clip(a * (means.mean() / means), 0, 255).astype(np.uint8)
    cv2.imwrite(dst, img, [cv2.IMWRITE_JPEG_QUALITY, 92])
else:
    sys.exit(f"unknown library {lib}")
