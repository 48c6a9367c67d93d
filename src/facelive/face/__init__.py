"""Faces in a frame: detection and square crops (:mod:`~facelive.face.detection`, MediaPipe
BlazeFace) and the 3D face mesh (:mod:`~facelive.face.mesh`, MediaPipe Face Mesh)."""
