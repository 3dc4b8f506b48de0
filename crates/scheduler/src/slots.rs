//! [`Slot`]s: the places a trial can run at the same time. A GPU gives `trials_per_device`
//! slots; the CPU gives `trials_per_device` slots that share its cores.

use sweep_model::DeviceName;

use crate::sweep_file::Devices;

/// One concurrent trial's place: a device, and for the CPU its share of the cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub device: DeviceName,
    /// Threads for the trial's CPU kernels.
    pub threads: usize,
}

impl Slot {
    /// The device as the slot's trial sees it: a GPU trial sees only its own GPU, as
    /// `cuda:0`. Every executor sees to that (locally with `CUDA_VISIBLE_DEVICES`; Slurm binds
    /// a job's GPUs itself).
    pub fn seen_device(&self) -> DeviceName {
        match self.device {
            DeviceName::Cpu => DeviceName::Cpu,
            DeviceName::Cuda(_) => DeviceName::Cuda(0),
        }
    }
}

/// The slots for `devices`, with `per_device` trials on each; `gpus` is the number of
/// visible GPUs and `cores` the CPU's. `auto` means every GPU, or the CPU when there is none.
pub fn plan_slots(devices: &Devices, per_device: usize, gpus: usize, cores: usize) -> Vec<Slot> {
    let names: Vec<DeviceName> = match devices {
        Devices::Auto if gpus > 0 => (0..gpus).map(DeviceName::Cuda).collect(),
        Devices::Auto => vec![DeviceName::Cpu],
        Devices::List(list) => list.clone(),
    };
    let per_device = per_device.max(1);
    let cpu_threads = (cores / per_device).max(1);
    names
        .into_iter()
        .flat_map(|device| {
            let threads = match device {
                DeviceName::Cpu => cpu_threads,
                DeviceName::Cuda(_) => 1,
            };
            (0..per_device).map(move |_| Slot { device, threads })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(slots: &[Slot]) -> Vec<(String, usize)> {
        slots
            .iter()
            .map(|s| (s.device.to_string(), s.threads))
            .collect()
    }

    fn pairs(expected: &[(&str, usize)]) -> Vec<(String, usize)> {
        expected.iter().map(|&(d, t)| (d.to_string(), t)).collect()
    }

    fn list(names: &[&str]) -> Devices {
        Devices::List(names.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn auto_uses_every_gpu_or_falls_back_to_the_cpu() {
        let gpus = plan_slots(&Devices::Auto, 2, 2, 16);
        assert_eq!(
            devices(&gpus),
            pairs(&[("cuda:0", 1), ("cuda:0", 1), ("cuda:1", 1), ("cuda:1", 1)])
        );
        let cpu = plan_slots(&Devices::Auto, 2, 0, 2);
        assert_eq!(
            devices(&cpu),
            pairs(&[("cpu", 1), ("cpu", 1)]),
            "2 cores shared by 2 trials"
        );
    }

    #[test]
    fn cpu_trials_share_the_cores() {
        assert_eq!(
            devices(&plan_slots(&list(&["cpu"]), 1, 0, 8)),
            pairs(&[("cpu", 8)])
        );
        assert_eq!(
            devices(&plan_slots(&list(&["cpu"]), 3, 0, 8)),
            pairs(&[("cpu", 2); 3])
        );
        assert_eq!(
            devices(&plan_slots(&list(&["cpu"]), 4, 0, 2)),
            pairs(&[("cpu", 1); 4])
        );
    }

    #[test]
    fn listed_gpus_are_used_as_listed() {
        let list = list(&["cuda:1", "cuda:3"]);
        assert_eq!(
            devices(&plan_slots(&list, 1, 4, 16)),
            pairs(&[("cuda:1", 1), ("cuda:3", 1)])
        );
    }
}
