"""Image-quality metrics: PSNR and SSIM (scikit-image-exact, full reference) and the Sobel sharpness measure."""
from jaxvision.metrics.image.psnr_ssim import BT601_LUMA, psnr, ssim
from jaxvision.metrics.image.sharpness import mean_gradient_magnitude
