//! [`DeviceName`]: the device a trial runs on, as written in sweep files and on the command
//! line (`cpu` or `cuda:K`), and the candle [`Device`](candle_core::Device) it opens.

use std::fmt;
use std::str::FromStr;

/// A device by name: `cpu` or `cuda:K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceName {
    Cpu,
    /// The GPU of this ordinal, as the process sees them.
    Cuda(usize),
}

/// A device name that is neither `cpu` nor `cuda:K`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device `{0}` (use `cpu` or `cuda:K`)")]
pub struct UnknownDevice(pub String);

impl FromStr for DeviceName {
    type Err = UnknownDevice;

    fn from_str(text: &str) -> Result<Self, UnknownDevice> {
        if text == "cpu" {
            return Ok(DeviceName::Cpu);
        }
        text.strip_prefix("cuda:")
            .and_then(|k| k.parse::<usize>().ok())
            .map(DeviceName::Cuda)
            .ok_or_else(|| UnknownDevice(text.to_string()))
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Cpu => f.write_str("cpu"),
            DeviceName::Cuda(k) => write!(f, "cuda:{k}"),
        }
    }
}

impl DeviceName {
    /// Opens the device (a CUDA device needs the `cuda` feature and that GPU).
    pub fn open(self) -> candle_core::Result<candle_core::Device> {
        match self {
            DeviceName::Cpu => Ok(candle_core::Device::Cpu),
            DeviceName::Cuda(k) => candle_core::Device::new_cuda(k),
        }
    }
}

/// The device a trial runs on, from its name: `cpu` or `cuda:K`.
pub fn device(name: &str) -> candle_core::Result<candle_core::Device> {
    match name.parse::<DeviceName>() {
        Ok(device) => device.open(),
        Err(unknown) => candle_core::bail!("{unknown}"),
    }
}

/// The number of GPUs this process can see (always 0 in a build without the `cuda` feature).
pub fn gpu_count() -> usize {
    #[cfg(feature = "cuda")]
    {
        (0..64)
            .take_while(|&k| candle_core::Device::new_cuda(k).is_ok())
            .count()
    }
    #[cfg(not(feature = "cuda"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_name_reads_back_as_itself() {
        for device in [DeviceName::Cpu, DeviceName::Cuda(0), DeviceName::Cuda(3)] {
            assert_eq!(device.to_string().parse::<DeviceName>(), Ok(device));
        }
    }

    #[test]
    fn other_names_are_refused_with_the_valid_forms() {
        for text in ["gpu", "cuda", "cuda:", "cuda:x", "CPU", "cuda:-1"] {
            let err = text.parse::<DeviceName>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("unknown device `{text}` (use `cpu` or `cuda:K`)")
            );
        }
    }
}
