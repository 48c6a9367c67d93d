"""Training of the 3D test (:mod:`facelive.liveness.face3d`): face meshes of the samples
(:mod:`.data`), the VoxNet in torch (:mod:`.voxnet`) and ``facelive train face3d``
(:mod:`.train`)."""
