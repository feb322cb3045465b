"""Full-reference image-quality metrics: PSNR and SSIM (scikit-image-exact)."""
from jaxvision.metrics.image.psnr_ssim import psnr, ssim
