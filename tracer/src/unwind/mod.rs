//! Native user stacks without frame pointers: the kernel copies registers and
//! the top of the stack at the event; here they are unwound with the DWARF
//! call-frame information of the mapped ELF files (framehop).

mod module_file;
mod process;

pub use module_file::{ModuleFile, ModuleFiles};
pub use process::{NativeAddr, ProcessModules, Unwound};
